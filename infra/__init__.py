"""The CDK constructs of the collector, one per capability; the stack only composes them."""
