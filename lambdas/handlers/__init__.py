"""Lambda entry points: each parses its event into a model, loads its settings, calls one logic
function with injected clients and returns a model as JSON."""
