# Django's Vietnamese formats set no digit grouping, so an amount such as a
# budget in VND would read 50000000 where a Vietnamese reader writes
# 50.000.000. Everything not named here comes from Django's own.
NUMBER_GROUPING = 3
DECIMAL_SEPARATOR = ","
THOUSAND_SEPARATOR = "."
