from django.dispatch import Signal

# Sent after the transaction that changed a lead commits, with `lead_id`.
# Scoring subscribes to it; `leads` never imports scoring.
lead_changed = Signal()

# Sent with `lead_ids` by callers that ingest many leads with announce=False
# and want them rescored together.
leads_changed = Signal()
