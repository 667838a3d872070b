package topo

import (
	"errors"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/status"
)

func TestValidateTableShape(t *testing.T) {
	tests := []struct {
		name                          string
		table                         string
		partitions, replicas, minSync uint32
		ok                            bool
	}{
		{"smallest", "t", 1, 1, 0, true},
		{"largest", strings.Repeat("x", MaxTableNameLen), MaxPartitions, 5, 4, true},
		{"name characters", "a_B-9.x", 4, 3, 1, true},
		{"empty name", "", 1, 1, 0, false},
		{"long name", strings.Repeat("x", MaxTableNameLen+1), 1, 1, 0, false},
		{"leading dot", ".t", 1, 1, 0, false},
		{"leading dash", "-t", 1, 1, 0, false},
		{"slash", "a/b", 1, 1, 0, false},
		{"no partitions", "t", 0, 1, 0, false},
		{"more partitions than slots", "t", MaxPartitions + 1, 1, 0, false},
		{"no replicas", "t", 1, 0, 0, false},
		{"min sync counts slaves", "t", 1, 2, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTableShape(tt.table, tt.partitions, tt.replicas, tt.minSync)
			if (err == nil) != tt.ok || err != nil && !errors.Is(err, status.ErrInvalidArgument) {
				t.Fatalf("ValidateTableShape(%q, %d, %d, %d) = %v, want ok %v", tt.table, tt.partitions, tt.replicas, tt.minSync, err, tt.ok)
			}
		})
	}
}

func TestReplicasDefault(t *testing.T) {
	if Replicas(0) != DefaultReplicas || Replicas(1) != 1 || Replicas(5) != 5 {
		t.Fatalf("Replicas: 0 -> %d, 1 -> %d, 5 -> %d", Replicas(0), Replicas(1), Replicas(5))
	}
}

func TestValidateNodeAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9231": true, "node-1:9231": true, "[::1]:9231": true,
		"": false, "127.0.0.1": false, ":9231": false, "127.0.0.1:": false,
	} {
		if err := ValidateNodeAddr(addr); (err == nil) != ok {
			t.Errorf("ValidateNodeAddr(%q) = %v, want ok %v", addr, err, ok)
		}
	}
}
