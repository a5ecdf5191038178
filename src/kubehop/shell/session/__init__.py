"""A Session owns one run against one cluster: one API client, one node transport, the options;
it observes, checks, plans and applies. `kubehop.cli` only parses flags and renders."""

from kubehop.shell.session.base import BaseSession, SessionOptions
from kubehop.shell.session.reports import DryRun, NextStep
from kubehop.shell.session.runs import ApplySettings
from kubehop.shell.session.session import Session
from kubehop.shell.session.ui import QuietUi, Ui

__all__ = ["ApplySettings", "BaseSession", "DryRun", "NextStep", "QuietUi", "Session",
           "SessionOptions", "Ui"]
