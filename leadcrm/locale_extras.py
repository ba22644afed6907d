"""Messages Django shows on our pages that its own Vietnamese catalogue
lacks. Listing them here lets `makemessages` keep them in locale/vi, whose
translations take precedence over Django's. Nothing imports this module.
"""

from django.utils.translation import ngettext_lazy

# django.utils.timesince, as in "scored 3 minutes ago" on the lead page.
TIMESINCE = (
    ngettext_lazy("%(num)d year", "%(num)d years", "num"),
    ngettext_lazy("%(num)d month", "%(num)d months", "num"),
    ngettext_lazy("%(num)d week", "%(num)d weeks", "num"),
    ngettext_lazy("%(num)d day", "%(num)d days", "num"),
    ngettext_lazy("%(num)d hour", "%(num)d hours", "num"),
    ngettext_lazy("%(num)d minute", "%(num)d minutes", "num"),
)
