"""What tests and benchmarks share: databases and topics of their own, sealed credentials, real processes
(the Twilio stand-in, dispatchers) and the factories that seed organisations, senders, campaigns and runs.

Benchmarks import this package, never ``tests``; it is linted and type-checked like the product.
"""
