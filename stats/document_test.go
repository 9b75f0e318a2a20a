package stats

import (
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	zero, one := int64(0), int64(1)
	tests := []struct {
		name string
		in   string
		want *Document // nil: an error
	}{
		{"shardproxy", `{"service":"nutcracker","config_digest":"d1","reloads":2,"reload_failures":1,` +
			`"reload_error":"bad","curr_connections":3,"alpha":{"requests":5,"migration_started":1,"migration_pending":3,` +
			`"keys_migrated":40,"migration_errors":1,"a":{"requests":1}},"beta":{"migration_pending":0,` +
			`"keys_migrated":0,"migration_errors":0,"migration_started":0},"mc":{"requests":1}}`,
			&Document{Digest: "d1", Reloads: 2, ReloadFailures: 1, ReloadError: "bad", Pools: map[string]Migration{
				"alpha": {Pending: 3, Moved: 40, Errors: 1, Started: &one},
				"beta":  {Started: &zero}}}},
		{"nutcracker", `{"service":"nutcracker","uptime":5,"alpha":{"client_eof":0,"a":{"requests":1}}}`,
			&Document{Pools: map[string]Migration{}}},
		{"no migration_started", `{"alpha":{"migration_pending":2}}`,
			&Document{Pools: map[string]Migration{"alpha": {Pending: 2}}}},
		{"not JSON", `alpha`, nil},
		{"not an object", `[1]`, nil},
		{"bad counter", `{"alpha":{"migration_pending":"x"}}`, nil},
		{"bad digest", `{"config_digest":1}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.want == nil {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestWaiting(t *testing.T) {
	zero, one := int64(0), int64(1)
	for _, tt := range []struct {
		m    Migration
		want bool
	}{
		{Migration{Pending: 2, Started: &zero}, true},
		{Migration{Pending: 2, Started: &one}, false},
		{Migration{Pending: 0, Started: &zero}, false},
		{Migration{Pending: 2}, false},
	} {
		if got := tt.m.Waiting(); got != tt.want {
			t.Errorf("%+v: Waiting() = %t", tt.m, got)
		}
	}
}

// TestRead reads what a listener answers, as a stats port does: the
// document, then the end of the connection.
func TestRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	doc := `{"config_digest":"d"}` + "\n"
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte(doc))
		c.Close()
	}()
	b, err := Read(ln.Addr().String(), 5*time.Second)
	<-done
	if err != nil || string(b) != doc {
		t.Fatalf("got %q, %v; want %q", b, err, doc)
	}
	ln.Close()
	if _, err := Read(ln.Addr().String(), time.Second); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("closed port: %v, want connection refused", err)
	}
}
