"""Anonymizers: destroy personal data irreversibly before anything is written.

Every operator here is one-way: keyed hashing (:class:`Pseudonymize`), removal
(:class:`Redact`, :class:`Suppress`), partial removal (:class:`Mask`), coarsening
(:class:`Generalize`), detection and replacement in free text (:class:`ScrubPII`) and a
k-anonymity gate (:class:`KAnonymity`). There is deliberately no encryption, no
format-preserving encryption and no mapping table: nothing can be turned back.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "Anonymizer": ".base",
    "Generalize": ".generalize",
    "KAnonymity": ".kanonymity",
    "Mask": ".redact",
    "Pseudonymize": ".pseudonymize",
    "Redact": ".redact",
    "ScrubPII": ".scrub",
    "Suppress": ".redact",
    "detectors": ".detectors",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from . import detectors
    from .base import Anonymizer
    from .generalize import Generalize
    from .kanonymity import KAnonymity
    from .pseudonymize import Pseudonymize
    from .redact import Mask, Redact, Suppress
    from .scrub import ScrubPII

__all__ = [
    "Anonymizer",
    "Generalize",
    "KAnonymity",
    "Mask",
    "Pseudonymize",
    "Redact",
    "ScrubPII",
    "Suppress",
    "detectors",
]
