"""The one comparison table of the content: what ``=``, ``!=``, ``>``,
``>=``, ``<`` and ``<=`` mean between an answer and a threshold, for the
rules language (:mod:`kiosk.rules`: rule conditions and score bands) and for
FHIR enableWhen (:mod:`kiosk.questionnaire.expressions`) alike.

It imports nothing of the project, so both can use it without an import
circle. Two values that cannot be ordered (a number and a text) compare as
False rather than raising, so a pack's threshold of the wrong type never
crashes a visit::

    >>> compare(">=", 7, 5), compare("!=", "a", "b"), compare("<", 3, "x")
    (True, True, False)
"""

from __future__ import annotations

import operator

#: Operator -> how ``answer OP threshold`` is decided.
COMPARE = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def compare(op: str, actual, expected) -> bool:
    """``actual OP expected``; False when the two cannot be ordered."""
    try:
        return bool(COMPARE[op](actual, expected))
    except TypeError:
        return False
