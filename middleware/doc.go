// Package middleware holds the Watermill handler middleware that makes a
// handler safe to fail.
//
// Retry is the one piece that matters: configured per handler, it retries a
// failing handler by its policy and dead-letters the event once the retries
// are spent, so retrying and dead-lettering cannot be put in the wrong
// order. With a subscriber that redelivers nacked messages later (see
// core.MetadataDeliveryCount) the pauses are kept by the broker and survive
// a restart; with any other subscriber Retry sleeps between attempts.
//
// Recoverer turns a panic into an error for routers that do not use Retry.
package middleware
