"""The usage rollups as a faust-streaming app: the contender in ``bench.usage_streams``, not a service.

It consumes the same three topics as ``services/usage`` and calls the same handlers
(``services/usage/handlers.py``) through the same validate -> handle -> dead-letter rule
(``libs.common.kafka.handle_record``), so the benchmark compares the streaming runtimes only: faust's
agents, acks and timed offset commits against the project's consumer. README, "Dependencies", says
why the service kept its own consumer.
"""
