package config

import "errors"

// ErrDataDirInUse means another process runs the embedded broker on the
// same data directory.
var ErrDataDirInUse = errors.New("the embedded broker's data directory is in use by another process")
