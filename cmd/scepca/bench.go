package main

import (
	"context"
	"errors"
	"io"
)

func runBench(context.Context, []string, func(string) string, io.Writer, io.Writer) error {
	return errors.New("bench: not built yet")
}
