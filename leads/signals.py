from django.dispatch import Signal

# Sent after the transaction that changed a lead commits, with `lead_id`.
# Scoring subscribes to it; `leads` never imports scoring.
lead_changed = Signal()
