import logging


class ForbiddenWithoutTraceback(logging.Filter):
    """A 403 is someone opening a page their role does not; Django logs it
    with the PermissionDenied traceback, which says nothing more than the
    line itself and buries the rest of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
