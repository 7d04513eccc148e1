package nats

import "errors"

// ErrNameConflict marks a stream or consumer that already exists on the
// server with subjects other than the adapter expects. Examples are the
// streams of a prefix that differs only in case, and a handler's consumer
// whose filter subject is another event type's.
var ErrNameConflict = errors.New("name already used on the nats server for other subjects")
