"""Clients of a pushed generator: render it locally (`ganpipe generate`), or call TF Serving over REST/gRPC."""
