"""REST sessions: a logon with the HMC user's password gives a token (``X-API-Session``)
that every later request carries; it ends at logoff or after it has not been used for a
while (clients often never log off: pypowervm's logoff rarely survives the interpreter's
exit, and IBM's ``vios`` facts module does not send one).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lpmlab import codes

IDLE_TIMEOUT_S = 2 * 3600.0   # the HMC's default inactivity timeout
MAX_SESSIONS = 256            # per HMC: the oldest idle session makes room


@dataclass
class Session:
    token: str
    user: str
    client: str
    created: float = field(default_factory=time.monotonic)
    used: float = field(default_factory=time.monotonic)


class SessionStore:
    """Tokens of one HMC's REST API (in memory: a restarted API asks clients to log on
    again, which they do on their own after a 401)."""

    def __init__(self, hmc: str, user: str, password_file: Path,
                 idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self.hmc = hmc
        self.user = user
        self.password_file = password_file
        self.idle_timeout_s = idle_timeout_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except OSError:
            return ""  # no password set: nobody logs on

    def logon(self, user: str, password: str, client: str) -> Session:
        """A new session for the HMC user with the right password; HSCLR401 otherwise (the
        same answer for a wrong user as for a wrong password)."""
        want = self._password()
        ok_user = hmac.compare_digest(user.encode(), self.user.encode())
        ok_password = bool(want) and hmac.compare_digest(password.encode(), want.encode())
        if not (ok_user and ok_password):
            raise codes.error("HSCLR401", obj=self.hmc)
        s = Session(secrets.token_urlsafe(48), user, client)
        with self._lock:
            self._expire()
            if len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions.values(), key=lambda x: x.used)
                del self._sessions[oldest.token]
            self._sessions[s.token] = s
        return s

    def check(self, token: str | None) -> Session:
        """The live session of ``token`` (its idle clock starts again); HSCLR402 when there
        is none."""
        if not token:
            raise codes.error("HSCLR402", detail="it carries no X-API-Session header")
        with self._lock:
            self._expire()
            s = self._sessions.get(token)
            if s is None:
                raise codes.error("HSCLR402", detail="its X-API-Session is not a session of "
                                  "this HMC, or it ended (logoff, or idle for "
                                  f"{self.idle_timeout_s:.0f} s)")
            s.used = time.monotonic()
            return s

    def logoff(self, token: str | None) -> bool:
        with self._lock:
            return self._sessions.pop(token or "", None) is not None

    def count(self) -> int:
        with self._lock:
            self._expire()
            return len(self._sessions)

    def _expire(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self._sessions.items()
                      if now - s.used > self.idle_timeout_s]:
            del self._sessions[token]
