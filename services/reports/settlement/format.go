package settlement

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/fanfare/fanfare/internal/platform/money"
)

// Formats are the file formats Write knows.
var Formats = []string{"csv", "json", "dsr"}

// ValidFormat reports whether Write knows format.
func ValidFormat(format string) bool { return slices.Contains(Formats, format) }

// Write writes the report in format (csv, json or dsr). Amounts are
// decimal text in the asset's units ("12.34" USD, "0.50000000" FAN).
func Write(w io.Writer, rep *Report, format string) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var err error
	switch format {
	case "csv":
		err = writeCSV(bw, rep)
	case "json":
		err = writeJSON(bw, rep)
	case "dsr":
		_, err = WriteDSR(bw, rep, time.Now())
	default:
		return fmt.Errorf("%w: format %q is none of %v", ErrInvalid, format, Formats)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

func amount(units int64, scale uint8) string { return money.FormatUnits(units, scale) }

// writeCSV: a header, then one line per row with every kind's credit and
// debit column.
func writeCSV(w io.Writer, rep *Report) error {
	cw := csv.NewWriter(w)
	head := []string{"payee", "account", "asset", "opening"}
	for _, k := range Kinds {
		head = append(head, "credit_"+KindName(k))
	}
	for _, k := range Kinds {
		head = append(head, "debit_"+KindName(k))
	}
	head = append(head, "closing")
	if err := cw.Write(head); err != nil {
		return err
	}
	line := make([]string, 0, len(head))
	for _, r := range rep.Rows {
		line = append(line[:0], r.Payee, r.Account, r.Asset, amount(r.Opening, r.Scale))
		for _, k := range Kinds {
			line = append(line, amount(r.Credits[k], r.Scale))
		}
		for _, k := range Kinds {
			line = append(line, amount(r.Debits[k], r.Scale))
		}
		line = append(line, amount(r.Closing, r.Scale))
		if err := cw.Write(line); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

type jsonAmounts map[string]string

func byKind(v *[numKinds]int64, scale uint8) jsonAmounts {
	out := jsonAmounts{}
	for _, k := range Kinds {
		if v[k] != 0 {
			out[KindName(k)] = amount(v[k], scale)
		}
	}
	return out
}

// writeJSON: one object; rows are written one by one, so a million of
// them never sit in memory as JSON.
func writeJSON(w io.Writer, rep *Report) error {
	type totals struct {
		Asset   string      `json:"asset"`
		Payees  int         `json:"payees"`
		Opening string      `json:"opening"`
		Credits jsonAmounts `json:"credits"`
		Debits  jsonAmounts `json:"debits"`
		Closing string      `json:"closing"`
	}
	type row struct {
		Payee   string      `json:"payee"`
		Account string      `json:"account"`
		Asset   string      `json:"asset"`
		Opening string      `json:"opening"`
		Credits jsonAmounts `json:"credits"`
		Debits  jsonAmounts `json:"debits"`
		Closing string      `json:"closing"`
	}
	head := struct {
		From   string   `json:"from"`
		To     string   `json:"to"`
		Events uint64   `json:"log_events"`
		Hash   string   `json:"log_hash"`
		Totals []totals `json:"totals"`
	}{From: rep.From.Format(time.DateOnly), To: rep.To.Format(time.DateOnly), Events: rep.Events, Hash: rep.Hash, Totals: []totals{}}
	for _, t := range rep.Totals {
		head.Totals = append(head.Totals, totals{t.Asset, t.Payees, amount(t.Opening, t.Scale), byKind(&t.Credits, t.Scale), byKind(&t.Debits, t.Scale), amount(t.Closing, t.Scale)})
	}
	b, err := json.Marshal(head)
	if err != nil {
		return err
	}
	// The head object, reopened to append the rows array.
	if _, err := w.Write(b[:len(b)-1]); err != nil {
		return err
	}
	if _, err := io.WriteString(w, `,"rows":[`); err != nil {
		return err
	}
	for i, r := range rep.Rows {
		if i > 0 {
			if _, err := io.WriteString(w, ","); err != nil {
				return err
			}
		}
		b, err := json.Marshal(row{r.Payee, r.Account, r.Asset, amount(r.Opening, r.Scale), byKind(&r.Credits, r.Scale), byKind(&r.Debits, r.Scale), amount(r.Closing, r.Scale)})
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	_, err = io.WriteString(w, "]}\n")
	return err
}

// DSRCounts are what a DSR file's footer states.
type DSRCounts struct {
	Lines, Summaries, Blocks int
}

// WriteDSR writes the report in the shape of a DDEX DSR flat file:
// tab-separated records, one per line —
//
//	HEAD  MessageVersion Profile MessageId MessageCreatedDateTime UsageStartDate UsageEndDate SenderName
//	SY01  SummaryRecordId Asset Payees Opening TotalCredits TotalDebits Closing     (one per asset)
//	SY02  SummaryRecordId Asset Kind Credits Debits                                   (one per asset and kind that moved)
//	SU01  BlockId Payee Account Asset Kind Direction Amount                           (one per payee account, kind and direction that moved)
//	FOOT  NumberOfLinesInFile NumberOfLinesInReport NumberOfSummaryRecords NumberOfBlocksInFile NumberOfBlocksInReport
//
// A sales/usage line is a payee's total of one kind in one direction over
// the period; each is its own block. The line counts include HEAD and
// FOOT. The message id is the head of the log's hash chain.
func WriteDSR(w io.Writer, rep *Report, created time.Time) (DSRCounts, error) {
	var c DSRCounts
	var err error
	rec := func(cells ...string) {
		if err != nil {
			return
		}
		for i, cell := range cells {
			if i > 0 {
				if _, err = io.WriteString(w, "\t"); err != nil {
					return
				}
			}
			if _, err = io.WriteString(w, cell); err != nil {
				return
			}
		}
		_, err = io.WriteString(w, "\n")
		c.Lines++
	}
	itoa := strconv.Itoa
	rec("HEAD", "fanfare-settlement/1", "Settlement", rep.Hash, created.UTC().Format(time.RFC3339), rep.From.Format(time.DateOnly), rep.To.Format(time.DateOnly), "Fanfare")
	for _, t := range rep.Totals {
		c.Summaries++
		rec("SY01", itoa(c.Summaries), t.Asset, itoa(t.Payees), amount(t.Opening, t.Scale), amount(sum(t.Credits[:]), t.Scale), amount(sum(t.Debits[:]), t.Scale), amount(t.Closing, t.Scale))
		for _, k := range Kinds {
			if t.Credits[k] != 0 || t.Debits[k] != 0 {
				c.Summaries++
				rec("SY02", itoa(c.Summaries), t.Asset, KindName(k), amount(t.Credits[k], t.Scale), amount(t.Debits[k], t.Scale))
			}
		}
	}
	for _, r := range rep.Rows {
		for _, k := range Kinds {
			for _, side := range [...]struct {
				dir string
				v   int64
			}{{"CREDIT", r.Credits[k]}, {"DEBIT", r.Debits[k]}} {
				if side.v != 0 {
					c.Blocks++
					rec("SU01", itoa(c.Blocks), r.Payee, r.Account, r.Asset, KindName(k), side.dir, amount(side.v, r.Scale))
				}
			}
		}
	}
	total := c.Lines + 1 // with the footer
	rec("FOOT", itoa(total), itoa(total), itoa(c.Summaries), itoa(c.Blocks), itoa(c.Blocks))
	return c, err
}
