package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// analyticsCmd is `imctl analytics QUERY`: the admin analytics endpoint,
// answered from the message archive.
func (a *app) analyticsCmd() *ffcli.Command {
	fs := a.flagSet("analytics")
	from := fs.String("from", "", "start of the range, RFC 3339 or YYYY-MM-DD (default: 24 hours before --to)")
	to := fs.String("to", "", "end of the range, exclusive (default: now)")
	bucket := fs.String("bucket", "", "messages: hour or day; active-users: day (DAU) or month (MAU)")
	limit := fs.Int("limit", 10, "length of the top-conversations and top-groups lists")
	mint := a.secretFlags(fs)
	return a.command(fs, "analytics QUERY [--from T] [--to T] [--bucket B] [--limit N] [--admin-secret-file F]",
		"ask the message archive: messages, active-users, top-conversations, top-groups, content-mix, conversation-share, delivery-latency", 1, 1,
		func(ctx context.Context, args []string) error {
			h, err := a.adminHTTP(mint)
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"from": *from, "to": *to, "bucket": *bucket, "limit": strconv.Itoa(*limit)} {
				if v != "" {
					q.Set(k, v)
				}
			}
			ctx, cancel := context.WithTimeout(ctx, max(a.g.timeout, time.Minute))
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", h.BaseURL+"/v1/admin/analytics/"+url.PathEscape(args[0])+"?"+q.Encode(), nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+h.Token)
			hc := h.Client
			if hc == nil {
				hc = http.DefaultClient
			}
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
			if err != nil {
				return err
			}
			var doc struct {
				ElapsedMs int64           `json:"elapsed_ms"`
				Result    json.RawMessage `json:"result"`
				Error     *struct {
					Code, Message string
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				return fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
			}
			if doc.Error != nil {
				return fmt.Errorf("%s: %s", doc.Error.Code, doc.Error.Message)
			}
			if a.g.json {
				_, err := fmt.Fprintf(a.stdout, "%s\n", body)
				return err
			}
			return a.printAnalytics(args[0], doc.Result, doc.ElapsedMs)
		})
}

// printAnalytics prints a result as a small table.
func (a *app) printAnalytics(query string, raw json.RawMessage, elapsedMs int64) error {
	var rows []map[string]any
	if json.Unmarshal(raw, &rows) == nil {
		for _, r := range rows {
			switch {
			case r["start"] != nil:
				fmt.Fprintf(a.stdout, "%-22v %v\n", r["start"], r["count"])
			default:
				fmt.Fprintf(a.stdout, "%-40v %v\n", r["key"], r["count"])
			}
		}
	} else {
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil {
			return err
		}
		for _, k := range []string{"deliveries", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"} {
			if v, ok := obj[k]; ok {
				fmt.Fprintf(a.stdout, "%-12s %v\n", k, v)
			}
		}
	}
	_, err := fmt.Fprintf(a.stderr, "imctl: %s answered in %d ms\n", query, elapsedMs)
	return err
}
