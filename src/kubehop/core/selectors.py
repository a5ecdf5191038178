"""Label selectors: kubehop's one reading of metav1.LabelSelector and of the selector strings.

`selector_from_api` follows `LabelSelectorAsSelector` (kubernetes/kubernetes
staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/helpers.go): a null selector matches nothing
(`labels.Nothing()`), `{}` matches everything (`labels.Everything()`), and an operator other than
In, NotIn, Exists, DoesNotExist is an error, as are In/NotIn without values and Exists/DoesNotExist
with values (`labels.NewRequirement`, staging/src/k8s.io/apimachinery/pkg/labels/selector.go).
For PodDisruptionBudgets this is the policy/v1 rule the eviction subresource applies
(pkg/registry/core/pod/storage/eviction.go `getPodDisruptionBudgets`, since kubernetes/kubernetes
#119732 also for `{}`) and the disruption controller's lister
(staging/src/k8s.io/client-go/listers/policy/v1/poddisruptionbudget_expansion.go).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubehop.model.errors import OperationError

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(OperationError, ValueError):
    """A label selector the API would not accept (the message is apimachinery's)."""


@dataclass(frozen=True, slots=True)
class Requirement:
    """One requirement: matchLabels entries are In with one value."""

    key: str
    operator: str  # one of OPERATORS
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """`labels.Requirement.Matches`: NotIn and DoesNotExist match objects without the key."""
        value = labels.get(self.key)
        if self.operator == "In":
            return value is not None and value in self.values
        if self.operator == "NotIn":
            return value is None or value not in self.values
        return (value is not None) == (self.operator == "Exists")

    def text(self) -> str:
        """As `Requirement.String()`: `k in (a,b)`, `k notin (a,b)`, `k`, `!k`."""
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        return f"{self.key} {self.operator.lower()} ({','.join(sorted(self.values))})"


@dataclass(frozen=True, slots=True)
class Selector:
    """A compiled label selector: `nothing` is the null selector; no requirements, everything."""

    requirements: tuple[Requirement, ...] = ()
    equals: tuple[tuple[str, str], ...] = ()  # matchLabels, sorted by key
    nothing: bool = False

    @property
    def everything(self) -> bool:
        return not self.nothing and not self.requirements and not self.equals

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        for key, value in self.equals:
            if labels.get(key) != value:
                return False
        return all(r.matches(labels) for r in self.requirements)

    def query(self) -> str:
        """The `labelSelector=` query string (`labels.Selector.String()`: terms sorted by key).

        The null selector has no query form (it selects nothing): callers must not list by it.
        """
        terms = [(k, f"{k}={v}") for k, v in self.equals]
        terms += [(r.key, r.text()) for r in self.requirements]
        return ",".join(text for _, text in sorted(terms, key=lambda t: t[0]))


NOTHING = Selector(nothing=True)
EVERYTHING = Selector()


def selector_from_api(selector: Mapping[str, Any] | None) -> Selector:
    """metav1.LabelSelectorAsSelector; raises SelectorError for a selector the API rejects."""
    if selector is None:
        return NOTHING
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or ()
    if not match_labels and not expressions:
        return EVERYTHING
    reqs = []
    for expr in expressions:
        key, op = expr.get("key") or "", expr.get("operator") or ""
        values = frozenset(expr.get("values") or ())
        if op not in OPERATORS:
            raise SelectorError(f'"{op}" is not a valid label selector operator')
        if op in ("In", "NotIn") and not values:
            raise SelectorError("for 'in', 'notin' operators, values set can't be empty")
        if op in ("Exists", "DoesNotExist") and values:
            raise SelectorError("values set must be empty for exists and does not exist")
        reqs.append(Requirement(key, op, values))
    equals = tuple(sorted((str(k), str(v)) for k, v in match_labels.items()))
    return Selector(tuple(reqs), equals)


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether `selector` (a metav1.LabelSelector, JSON decoded) selects `labels`."""
    return selector_from_api(selector).matches(labels)


# --- selector strings (--pod-selector) -------------------------------------------------------

_KEY = r"(?:[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?"
_VALUE = r"(?:[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?)?"
_TERM = re.compile(
    rf"^\s*(?:!\s*{_KEY}|{_KEY}\s*(?:(?:==?|!=)\s*{_VALUE}"
    rf"|\s+(?:in|notin)\s*\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\))?)\s*$")


def valid_label_selector(text: str) -> bool:
    """Whether `text` parses as a Kubernetes label selector (`a=b,c!=d,e in (f,g),!h`)."""
    if not text.strip():
        return True
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return depth == 0 and all(_TERM.match(term) for term in terms)
