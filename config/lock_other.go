//go:build !unix

package config

// lockDataDir does nothing on this system.
//
// TODO: lock the data directory here too; without it, two processes can
// run embedded servers on the same files and damage the streams.
func lockDataDir(string) (unlock func() error, err error) {
	return func() error { return nil }, nil
}
