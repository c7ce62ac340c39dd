package money_test

import (
	"fmt"

	"github.com/fanfare/fanfare/internal/platform/money"
)

func ExampleParse() {
	m, err := money.Parse(money.USD, "5", money.Positive)
	fmt.Println(m, err)
	_, err = money.Parse(money.USD, "0.001", money.Positive)
	fmt.Println(err)
	// Output:
	// 5.00 USD <nil>
	// money: USD allows 2 decimals, got "0.001"
}

func ExampleAllocate() {
	// A tip of USD 1.00 split 50/25/25 between three payees, then USD 0.10 in
	// thirds: the leftover cent goes to the smallest payee id.
	fmt.Println(money.Allocate(100, []money.Share{{"artist", 500_000}, {"bassist", 250_000}, {"drummer", 250_000}}))
	fmt.Println(money.Allocate(10, []money.Share{{"carol", 1}, {"alice", 1}, {"bob", 1}}))
	// Output:
	// [50 25 25] <nil>
	// [3 4 3] <nil>
}
