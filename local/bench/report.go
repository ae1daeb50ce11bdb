package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/kafka-msk-migrator/kafka-msk-migrator/local/esm"
)

// Write prints the report as compact tables followed by the goals.
func (r *Report) Write(out io.Writer) error {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "kmig-bench  %s %s/%s  GOMAXPROCS=%d  %d rounds, contenders interleaved, order alternating each round\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), o.Rounds)
	fmt.Fprintf(&b, "Figures are median [min–max] over rounds; a ratio is taken per round, then summarized. 1 MB = 10^6 bytes.\n")
	fmt.Fprintf(&b, "Events: esm.Encoder, full (≤ %d bytes), %d partitions, key + random value + 2 headers per record.\n",
		r.eventLimit(), Partitions)
	fmt.Fprintf(&b, "NOTE: the kfake source and target run IN THIS PROCESS; they share the CPU and the heap with the code measured.\n")

	fmt.Fprintf(&b, "\nDECODE  (MB/s of event bytes; ratio = kafkaevent speed ÷ other decoder's speed, same bytes)\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "value\trecords\tevent B\tkafkaevent\tencoding/json\tratio\tjson+base64→kgo\tratio")
	for _, d := range r.Decode {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", SizeLabel(d.ValueSize), d.Records, d.EventBytes,
			rate(d.Fast), rate(d.Std), ratio(d.Ratio), rate(d.StdRecords), ratio(d.RatioRecords))
	}
	tw.Flush()

	fmt.Fprintf(&b, "\nHANDLER THROUGHPUT  (handler: event bytes in → acks back, replicate.Handle as deployed: provenance on, transaction check on;\n")
	fmt.Fprintf(&b, "  raw: kgo ProduceSync of the same records; acks=all, idempotent, same target; MB/s of key+value+header bytes)\n")
	fmt.Fprintf(&b, "  compression %s; the handler's records carry one more header (kmig-src, ~30 bytes)\n", o.Compression)
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "value\trecords\thandler rec/s\thandler MB/s\traw rec/s\traw MB/s\thandler/raw")
	for _, h := range r.Handle {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", SizeLabel(h.ValueSize), h.Records,
			count(h.HandlerRecs), rate(h.HandlerMBs), count(h.RawRecs), rate(h.RawMBs), ratio(h.Ratio))
	}
	tw.Flush()

	fmt.Fprintf(&b, "\nTRANSACTION CHECK  (the handler as deployed reads each batch's transaction outcomes from the source: read_committed\n")
	fmt.Fprintf(&b, "  fetches, record-batch headers only; beside it the same handler without the check, on the same kind of topic;\n")
	fmt.Fprintf(&b, "  ratio = throughput with ÷ without, per round; source records uncompressed; txn: in committed transactions of %d records;\n", TxnRecords)
	fmt.Fprintf(&b, "  the in-process source's work serving the fetches is counted in the handler's time; MB/s as above)\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "value	plain: with	without	with/without	fetches, MB per event	txn: with	without	with/without	fetches, MB per event")
	for _, h := range r.Handle {
		fmt.Fprintf(tw, "%s	%s	%s	%s	%.1f, %.1f	%s	%s	%s	%.1f, %.1f\n", SizeLabel(h.ValueSize),
			rate(h.HandlerMBs), rate(h.UncheckedMBs), ratio(h.CheckRatio), h.SourceFetches, h.SourceBytes/1e6,
			rate(h.TxnMBs), rate(h.TxnUncheckedMBs), ratio(h.TxnCheckRatio), h.TxnSourceFetches, h.TxnSourceBytes/1e6)
	}
	tw.Flush()

	fmt.Fprintf(&b, "\nFENCE  (the handler as deployed beside the same handler with the fence: each event's partitions written in one\n")
	fmt.Fprintf(&b, "  transaction each, of the partition's transactional ID; ratio = throughput with ÷ without, per round; MB/s as above)\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "value\twithout\twith fence\twith/without")
	for _, h := range r.Handle {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", SizeLabel(h.ValueSize), rate(h.HandlerMBs), rate(h.FencedMBs), ratio(h.FenceRatio))
	}
	tw.Flush()

	fmt.Fprintf(&b, "\nMEMORY per batch  (alloc = bytes allocated during one call, × event size; peak = heap rise during the call;\n"+
		"  handle and raw: the median of %d batches in a row, each batch listed below the table)\n", MemorySamples)
	if o.Profile {
		fmt.Fprintf(&b, "  process = all but the in-process clusters' share (by call stack, MemProfileRate=1): what a Lambda would allocate\n")
	} else {
		fmt.Fprintf(&b, "  not profiled: process figures include the in-process clusters' allocations\n")
	}
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "value\tevent B\tdecode alloc\thandle alloc (process)\thandle: kfake\traw alloc (process)\tpeak decode\tpeak handle\tpeak raw")
	for _, m := range r.Memory {
		ev := float64(m.EventBytes)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", SizeLabel(m.ValueSize), m.EventBytes,
			times(m.Decode.Process(), ev), times(m.Handle.Process(), ev), times(m.Handle.ByClass[ClassTarget], ev),
			times(m.Raw.Process(), ev), times(m.Decode.PeakHeap, ev), times(m.Handle.PeakHeap, ev), times(m.Raw.PeakHeap, ev))
	}
	tw.Flush()
	for _, m := range r.Memory {
		ev := float64(m.EventBytes)
		fmt.Fprintf(&b, "  %s batches in a row (process alloc × event size): handle %s; raw %s\n",
			SizeLabel(m.ValueSize), timesList(m.HandleSamples, ev), timesList(m.RawSamples, ev))
	}
	for _, m := range r.Memory {
		if len(m.Handle.ByClass) == 0 {
			continue
		}
		ev := float64(m.EventBytes)
		var profiled uint64
		for _, v := range m.Handle.ByClass {
			profiled += v
		}
		fmt.Fprintf(&b, "  handle %s by class (%.1f of %.1fMB attributed): %s %s, %s %s, %s %s, %s %s\n", SizeLabel(m.ValueSize),
			float64(profiled)/1e6, float64(m.Handle.Alloc)/1e6, ClassCode, times(m.Handle.ByClass[ClassCode], ev), ClassClient, times(m.Handle.ByClass[ClassClient], ev),
			ClassOther, times(m.Handle.ByClass[ClassOther], ev), ClassTarget, times(m.Handle.ByClass[ClassTarget], ev))
		for i, s := range m.Handle.Sites {
			if i == 4 {
				break
			}
			fmt.Fprintf(&b, "    %-40s %-10s %s  %s\n", s.Where, s.Class, times(s.Bytes, ev), s.Func)
		}
	}

	fmt.Fprintf(&b, "\nGOALS\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, g := range r.Goals {
		verdict := "PASS"
		if !g.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\tmeasured %s\n", verdict, g.Name, g.Want, g.Got)
	}
	tw.Flush()
	if r.Passed() {
		fmt.Fprintf(&b, "All goals met (%s).\n", r.Elapsed.Round(1e8))
	} else {
		fmt.Fprintf(&b, "GOALS MISSED: see FAIL above (%s).\n", r.Elapsed.Round(1e8))
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func (r *Report) eventLimit() int {
	if r.Options.EventBytes > 0 {
		return r.Options.EventBytes
	}
	return esm.MaxPayloadBytes
}

func rate(s Summary) string {
	return fmt.Sprintf("%.0f [%.0f–%.0f]", s.Median, s.Min, s.Max)
}

func ratio(s Summary) string {
	return fmt.Sprintf("%.2f× [%.2f–%.2f]", s.Median, s.Min, s.Max)
}

func count(s Summary) string {
	return fmt.Sprintf("%s [%s–%s]", si(s.Median), si(s.Min), si(s.Max))
}

func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// timesList prints each of ns as a multiple of the event size.
func timesList(ns []uint64, event float64) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprintf("%.2f×", float64(n)/event)
	}
	return strings.Join(parts, " ")
}

// times prints bytes in MB and as a multiple of the event size.
func times(n uint64, event float64) string {
	return fmt.Sprintf("%.1fMB %.2f×", float64(n)/1e6, float64(n)/event)
}
