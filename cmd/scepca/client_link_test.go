package main

import (
	"net/http"
	"testing"
)

func TestNextLink(t *testing.T) {
	t.Parallel()
	tests := []struct{ link, want string }{
		{`</api/v1/devices?limit=2&cursor=abc>; rel="next"`, "/api/v1/devices?limit=2&cursor=abc"},
		{`<https://scep.example.com/api/v1/logs?cursor=x>; rel="next"`, "/api/v1/logs?cursor=x"},
		{`<https://example.com/scepca/api/v1/logs?cursor=x>; rel="next"`, "/api/v1/logs?cursor=x"},
		{`</api/v1/devices?cursor=1>; rel="prev"`, ""},
		{``, ""},
	}
	for _, tc := range tests {
		h := http.Header{}
		if tc.link != "" {
			h.Set("Link", tc.link)
		}
		if got := nextLink(h); got != tc.want {
			t.Errorf("nextLink(%q) = %q, want %q", tc.link, got, tc.want)
		}
	}
}
