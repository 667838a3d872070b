package binlog

import (
	"testing"
	"time"
)

func TestParseSyncPolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    SyncPolicy
		wantErr bool
	}{
		{"always", SyncAlways, false},
		{"interval", SyncInterval, false},
		{"none", SyncNone, false},
		{"", 0, true},
		{"Always", 0, true},
		{"fsync", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSyncPolicy(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSyncPolicy(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil {
			if s := got.String(); s != tt.in {
				t.Errorf("%v.String() = %q, want %q", got, s, tt.in)
			}
			var p SyncPolicy
			if err := p.UnmarshalText([]byte(tt.in)); err != nil || p != tt.want {
				t.Errorf("UnmarshalText(%q) = %v, %v", tt.in, p, err)
			}
		}
	}
	if var0 := (Options{}).Sync; var0 != SyncInterval {
		t.Errorf("zero Options.Sync = %v, want interval", var0)
	}
}

func TestOptionsDefaults(t *testing.T) {
	tests := []struct {
		name    string
		in      Options
		check   func(Options) bool
		wantErr bool
	}{
		{"zero", Options{}, func(o Options) bool {
			return o.SegmentSize == DefaultSegmentSize && o.Sync == SyncInterval &&
				o.SyncInterval == DefaultSyncInterval && o.Logger != nil
		}, false},
		{"custom", Options{SegmentSize: 1 << 20, Sync: SyncAlways, SyncInterval: time.Second}, func(o Options) bool {
			return o.SegmentSize == 1<<20 && o.Sync == SyncAlways && o.SyncInterval == time.Second
		}, false},
		{"tiny segment", Options{SegmentSize: 100}, nil, true},
		{"negative segment", Options{SegmentSize: -1}, nil, true},
		{"bad policy", Options{Sync: SyncPolicy(7)}, nil, true},
		{"negative interval", Options{SyncInterval: -time.Second}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.withDefaults()
			if (err != nil) != tt.wantErr {
				t.Fatalf("withDefaults() error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && !tt.check(got) {
				t.Fatalf("withDefaults() = %+v", got)
			}
		})
	}
}
