"""What a pending reason means, apart from the figures in it.

The engine explains every waiting workload in words with the figures of this cycle
("the largest free fraction on one device is 0.25", "(9.75 GPUs with this workload)").
While other workloads start and end the figures move every cycle; what a user would act
on does not. :func:`reason_kind` maps a reason to its kind: two reasons of one kind say
the same thing with other figures, so the service records a new "Pending" event only
when the kind changes (the status always shows the latest words).
"""

from __future__ import annotations

import re

__all__ = ["reason_kind"]

# a figure, with the unit glued to it if any: 3, 0.25, 1.5e9, 30Gi, 512Mi, 2GB, 100B
_FIGURE = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:[KMGTPE]i|[KMGTPE]?B)?")
# a counted thing loses its plural: "1 GPU" and "2 GPUs" read alike
_PLURAL = re.compile(r"(# (?:whole )?(?:GPU|CPU|core|pod|device|replica|node|worker))s\b")
# capacity on the nodes, said two ways depending on whether anything at all is free
# (placement.explain_no_fit): both mean "not enough of it free where it may run"
_SHORT = [
    (re.compile(r"(?:every GPU(?P<w1>[^;]*?) is fully allocated"
                r"|the largest free fraction on one device(?P<w2>[^;]*?) is #)"),
     "no device has enough free{w}"),
    (re.compile(r"(?:no GPU(?P<w1>[^;]*?) is idle"
                r"|the most idle GPU(?:s)? on one node(?P<w2>[^;]*?) is #)"),
     "too few idle GPUs on one node{w}"),
]


def reason_kind(reason: str | None) -> str | None:
    """The reason with its figures taken out and its wordings of one condition made one."""
    if reason is None:
        return None
    kind = _PLURAL.sub(r"\1", _FIGURE.sub("#", reason))
    for pattern, words in _SHORT:
        kind = pattern.sub(lambda m, words=words: words.format(w=m.group("w1") or m.group("w2") or ""), kind)
    return kind
