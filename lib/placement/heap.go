package placement

// heap is a binary min-heap of (cost, vertex), ties broken by vertex so the
// order of settling is deterministic.
type heap struct {
	items []heapItem
}

type heapItem struct {
	c cost
	v int
}

func (h *heap) len() int { return len(h.items) }

func (h *heap) less(i, j int) bool {
	if c := h.items[i].c.cmp(h.items[j].c); c != 0 {
		return c < 0
	}
	return h.items[i].v < h.items[j].v
}

func (h *heap) push(c cost, v int) {
	h.items = append(h.items, heapItem{c, v})
	i := len(h.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *heap) pop() (cost, int) {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h.items) && h.less(l, m) {
			m = l
		}
		if r < len(h.items) && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
	return top.c, top.v
}
