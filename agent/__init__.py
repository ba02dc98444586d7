"""Smart Agent: alerts on new government publications.

The pipeline, one module per stage::

    source → watchers/<kind>.py → Item → agent.changes (events) → agent.matching
           → agent.outbox (deliveries) → agent.dispatch → notifiers/<channel>.py → channel
"""

__version__ = "0.1.0"
