"""Whether an email domain takes mail (hygiene's deliverability check): a DNS look-up of its
mail servers (MX, or the address records RFC 5321 falls back to), each within a hard time
limit, remembered for an hour. Only a definite answer condemns a domain: a name that does not
exist, one with no mail server and no address, or a "null MX" (RFC 7505). A time-out or a
failing name server says nothing about the domain, so its addresses are kept."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

# Answers are remembered this long (a run of 100,000 contacts asks for each domain once; a
# worker that runs for weeks still sees a domain that has since got its mail servers).
REMEMBERED_FOR = 3600.0
# Look-ups in flight at once, so a batch of contacts of many domains is not looked up one by one.
CONCURRENT_LOOKUPS = 20


def _resolver(server: str | None, timeout: float) -> dns.asyncresolver.Resolver:
    """A resolver asking `server` ("host" or "host:port"; the system's resolvers when None)
    and giving up on a name after `timeout` seconds, retries included."""
    if server is None:
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        host, sep, port = server.rpartition(":")
        if sep and port.isdigit() and ":" not in host:
            resolver.nameservers, resolver.port = [host], int(port)
        else:
            resolver.nameservers = [server]
    resolver.timeout = resolver.lifetime = timeout
    return resolver


class MailDomains:
    """Which domains take no mail, each asked once an hour at most."""

    def __init__(self, server: str | None, timeout: float) -> None:
        self._resolver = _resolver(server, timeout)
        # domain -> (takes no mail, when it was asked)
        self._known: dict[str, tuple[bool, float]] = {}
        self._lookups = asyncio.Semaphore(CONCURRENT_LOOKUPS)

    async def undeliverable(
        self, domains: Iterable[str], looked_up: Callable[[], None] = lambda: None
    ) -> frozenset[str]:
        """Those of `domains` that take no mail; `looked_up` is called after each look-up (an
        activity heartbeats there: a slow name server must not look like a dead worker)."""

        async def ask(domain: str) -> None:
            async with self._lookups:
                self._known[domain] = (await self._takes_no_mail(domain), time.monotonic())
            looked_up()

        now = time.monotonic()
        stale = {
            d for d in domains if d not in self._known or now - self._known[d][1] >= REMEMBERED_FOR
        }
        await asyncio.gather(*(ask(d) for d in sorted(stale)))
        return frozenset(d for d in domains if self._known[d][0])

    async def _takes_no_mail(self, domain: str) -> bool:
        try:
            answer = await self._resolver.resolve(domain, "MX", search=False)
        except dns.resolver.NXDOMAIN:
            return True
        except dns.resolver.NoAnswer:
            return not await self._has_address(domain)
        except (dns.exception.DNSException, OSError):
            return False  # timed out, or no name server answered: unknown, kept
        # RFC 7505: a single MX of preference 0 naming the root says "no mail here".
        return all(r.exchange == dns.name.root for r in answer)

    async def _has_address(self, domain: str) -> bool:
        """RFC 5321 5.1: a domain without MX takes mail at its own address, if it has one."""
        for kind in ("A", "AAAA"):
            try:
                await self._resolver.resolve(domain, kind, search=False)
                return True
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except (dns.exception.DNSException, OSError):
                return True  # unknown: kept
        return False
