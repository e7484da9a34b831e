package app

import (
	"errors"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
)

func (c CLI) supervise(cmd *cobra.Command, cfg Config, log logr.Logger) error {
	return errors.New("todo")
}
