// Package metrics holds the process-wide Prometheus registry every Fanfare
// part serves on /metrics, and the Fanfare metrics registered on it.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is the process-wide registry: the Go runtime and process
// collectors plus the Fanfare metrics below.
var Registry = prometheus.NewRegistry()

var (
	// ConsumerLag is, per consumer group and partition, how many records
	// are behind the partition's high watermark once the records the last
	// poll returned are handled.
	ConsumerLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fanfare_consumer_lag",
		Help: "Records behind the partition's high watermark for a consumer group.",
	}, []string{"group", "topic", "partition"})

	// LedgerBatchSize is the number of ledger requests a book writer folded
	// into one batch.
	LedgerBatchSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fanfare_ledger_batch_size",
		Help:    "Requests per appended ledger batch.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 13), // 1, 2, 4, …, 4096
	}, []string{"book"})

	// LedgerCommitSeconds is, per request, the time from entering the book
	// writer to its batch being durably appended.
	LedgerCommitSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fanfare_ledger_commit_seconds",
		Help:    "Time from a request entering the book writer to its batch being durably appended.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"book"})

	// LedgerRefusals counts rejected ledger requests by reason.
	LedgerRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fanfare_ledger_refusals_total",
		Help: "Rejected ledger requests by reason (insufficient_funds, supply_cap, id_conflict, invalid, unknown_account, ...).",
	}, []string{"book", "reason"})

	// PartRestarts counts how often a part stopped on an error and was
	// rebuilt in its process (fanfare serve), e.g. when the event store
	// went away.
	PartRestarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fanfare_part_restarts_total",
		Help: "Times a part stopped on an error and was rebuilt inside its process.",
	}, []string{"part"})
)

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		ConsumerLag,
		LedgerBatchSize,
		LedgerCommitSeconds,
		LedgerRefusals,
		PartRestarts,
	)
}

// Handler serves the registry in the Prometheus exposition format.
func Handler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{Registry: Registry})
}

// SetConsumerLag sets the lag of group on one partition of topic.
func SetConsumerLag(group, topic string, partition int32, lag int64) {
	ConsumerLag.WithLabelValues(group, topic, strconv.Itoa(int(partition))).Set(float64(lag))
}

// ForgetConsumerLag drops the lag of group on partitions of topic, once
// they are no longer this process's to report.
func ForgetConsumerLag(group, topic string, partitions ...int32) {
	for _, p := range partitions {
		ConsumerLag.DeleteLabelValues(group, topic, strconv.Itoa(int(p)))
	}
}

// Book is one ledger book's metrics, with its label bound once: the book
// writer records every request, so the hot path does no label lookups.
type Book struct {
	batch, commit prometheus.Observer
	refusals      *prometheus.CounterVec
}

// ForBook returns the metrics of book (its asset code).
func ForBook(book string) Book {
	return Book{batch: LedgerBatchSize.WithLabelValues(book), commit: LedgerCommitSeconds.WithLabelValues(book),
		refusals: LedgerRefusals.MustCurryWith(prometheus.Labels{"book": book})}
}

// ObserveBatch records one ledger batch of size requests.
func (b Book) ObserveBatch(size int) { b.batch.Observe(float64(size)) }

// ObserveCommit records how long a request waited to be durable.
func (b Book) ObserveCommit(d time.Duration) { b.commit.Observe(d.Seconds()) }

// CountRefusal counts one rejected request; an empty reason counts as
// "unknown".
func (b Book) CountRefusal(reason string) {
	if reason == "" {
		reason = "unknown"
	}
	b.refusals.WithLabelValues(reason).Inc()
}
