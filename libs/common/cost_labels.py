"""How a run's two costs are named wherever a run is shown: the campaign page and the alert e-mails.

Both figures come from the ``run_figures`` view (migrations 0027, 0032): ``cost`` is Textpulse's estimate,
``actual_cost`` Twilio's reported price where it has one (the estimate elsewhere), ``cost_provisional``
true while Twilio has not priced every message. A run's cost is shown with four places.
"""

from typing import Final

ESTIMATED: Final = "Cost (estimated)"
ACTUAL: Final = "Cost (Twilio's price)"
PROVISIONAL: Final = "provisional: Twilio has not priced every text yet"
PLACES: Final = 4
