"""Local stand-ins for the providers: an SMTP server and a Twilio-shaped HTTP API that keep
everything they receive, for the dev stack and for tests."""

from devstack.sinks.mail import MailSink
from devstack.sinks.sms import SmsSink

__all__ = ["MailSink", "SmsSink"]
