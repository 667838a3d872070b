// Package keyspace maps keys to slots and slots to partitions, with Redis
// Cluster's rules so that cluster-aware tooling agrees with us.
package keyspace

import "bytes"

// Slots is the number of hash slots, as in Redis Cluster.
const Slots = 16384

// MaxKeySize is the largest key the cluster accepts.
const MaxKeySize = 64 << 10

// MaxValueSize is the largest value limit a node may be configured with
// (its default is lower): a request carries the value and must fit in a
// 64 MiB frame.
const MaxValueSize = 48 << 20

// HashTag returns the part of key between the first '{' and the next '}'
// when that part is non-empty, and nil otherwise.
func HashTag(key []byte) []byte {
	open := bytes.IndexByte(key, '{')
	if open < 0 {
		return nil
	}
	closing := bytes.IndexByte(key[open+1:], '}')
	if closing <= 0 {
		return nil
	}
	return key[open+1 : open+1+closing]
}

// Slot returns the slot of key: CRC16 of its hashtag, or of the whole key when
// it has none, modulo Slots.
func Slot(key []byte) uint16 {
	if tag := HashTag(key); tag != nil {
		key = tag
	}
	return CRC16(key) % Slots
}

// SlotRange returns the half-open slot range [begin, end) that partition id
// of a table created with n partitions owns: the even layout, which the meta
// records in each new partition, and which a partition of a table created
// before ranges were recorded owns (lib/topo.SlotRange).
func SlotRange(id, n uint32) (begin, end uint32) {
	return id * Slots / n, (id + 1) * Slots / n
}

// PartitionOfSlot returns the partition that owns slot in the even layout
// of n partitions, the inverse of SlotRange. Only for tables known never to
// have been split (tests, key generators): the cluster routes by the
// table's SlotMap.
func PartitionOfSlot(slot uint16, n uint32) uint32 {
	// The inverse of SlotRange: the largest id with id*Slots/n <= slot.
	id := (uint32(slot)*n + n - 1) / Slots
	for id > 0 {
		if begin, _ := SlotRange(id, n); begin <= uint32(slot) {
			break
		}
		id--
	}
	for id+1 < n {
		if begin, _ := SlotRange(id+1, n); begin > uint32(slot) {
			break
		}
		id++
	}
	return id
}

// Partition returns the partition that holds key in the even layout of n
// partitions; see PartitionOfSlot.
func Partition(key []byte, n uint32) uint32 {
	return PartitionOfSlot(Slot(key), n)
}
