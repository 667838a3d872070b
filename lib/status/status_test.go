package status

import (
	"errors"
	"fmt"
	"testing"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestIsMatchesByCode(t *testing.T) {
	err := fmt.Errorf("get: %w", New(zppb.Code_NOT_FOUND, "key %q", "k"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("errors.Is(%v, ErrNotFound) = false", err)
	}
	if errors.Is(err, ErrTableNotFound) {
		t.Fatalf("errors.Is(%v, ErrTableNotFound) = true", err)
	}
	if Code(err) != zppb.Code_NOT_FOUND {
		t.Fatalf("Code = %v", Code(err))
	}
	if Code(errors.New("x")) != zppb.Code_ERROR || Code(nil) != zppb.Code_OK {
		t.Fatal("Code of plain error or nil is wrong")
	}
}

func TestResponseRoundTrip(t *testing.T) {
	tests := []struct {
		err      error
		wantCode zppb.Code
		wantMsg  string
	}{
		{New(zppb.Code_KEY_TOO_LARGE, "key is 70000 bytes"), zppb.Code_KEY_TOO_LARGE, "key is 70000 bytes"},
		{fmt.Errorf("set: %w", New(zppb.Code_EMPTY_KEY, "empty key")), zppb.Code_EMPTY_KEY, "set: EMPTY_KEY: empty key"},
		{ErrWait, zppb.Code_WAIT, ""},
		{errors.New("disk on fire"), zppb.Code_ERROR, "disk on fire"},
	}
	for _, tt := range tests {
		resp := Response(tt.err)
		if resp.Code != tt.wantCode || resp.Msg != tt.wantMsg {
			t.Errorf("Response(%v) = %v %q, want %v %q", tt.err, resp.Code, resp.Msg, tt.wantCode, tt.wantMsg)
		}
		back := FromResponse(resp)
		if Code(back) != tt.wantCode {
			t.Errorf("FromResponse(Response(%v)) code %v", tt.err, Code(back))
		}
	}
	if FromResponse(&zppb.Response{}) != nil {
		t.Error("FromResponse(OK) != nil")
	}
}
