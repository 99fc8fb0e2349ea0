"""Provider clients over HTTP (signed webhook, Twilio-compatible SMS, email API) behind the Sender port."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Protocol

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from notifier.adapters.ssrf import Allowlist, UnsafeUrl, guard_for
from notifier.config import NotifierSettings
from notifier.service_layer.ports import Accepted, Outgoing, SendFailed


class Transient(Exception):
    """A failure worth retrying (network, 429, 5xx)."""


class Provider(Protocol):
    """One provider API."""

    name: str

    def request(self, message: Outgoing) -> httpx.Request:
        """The HTTP request that sends the message."""
        ...

    def message_id(self, response: httpx.Response, message: Outgoing) -> str:
        """The provider's id of the accepted message."""
        ...


class SignedWebhook:
    """A generic webhook: JSON body signed with HMAC-SHA256 (`X-Switchboard-Signature`)."""

    name = "webhook"

    def __init__(self, url: str, secret: str) -> None:
        self.url, self.secret = url, secret.encode()

    def request(self, message: Outgoing) -> httpx.Request:
        """POST the message as JSON with its signature and idempotency key."""
        body = json.dumps(
            {
                "channel": message.channel,
                "recipient": message.recipient,
                "subject": message.subject,
                "text": message.text,
                "idempotency_key": message.idempotency_key,
            },
            ensure_ascii=False,
        ).encode()
        sig = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        headers = {
            "content-type": "application/json",
            "x-switchboard-signature": f"sha256={sig}",
            "idempotency-key": message.idempotency_key,
        }
        return httpx.Request("POST", self.url, content=body, headers=headers)

    def message_id(self, response: httpx.Response, message: Outgoing) -> str:
        """The id the receiver returned, else our idempotency key."""
        return _json_field(response, "id") or message.idempotency_key


class TwilioSms:
    """A Twilio-compatible Messages API (form body, basic auth, idempotency token header)."""

    name = "twilio"

    def __init__(self, base_url: str, account: str, token: str, sender: str) -> None:
        self.base_url, self.account, self.token, self.sender = base_url, account, token, sender

    def request(self, message: Outgoing) -> httpx.Request:
        """POST To/From/Body to the account's Messages resource."""
        url = f"{self.base_url.rstrip('/')}/2010-04-01/Accounts/{self.account}/Messages.json"
        data = {"To": message.recipient, "From": self.sender, "Body": message.text}
        auth = httpx.BasicAuth(self.account, self.token)
        req = httpx.Request(
            "POST", url, data=data, headers={"i-twilio-idempotency-token": message.idempotency_key}
        )
        return next(auth.auth_flow(req))

    def message_id(self, response: httpx.Response, message: Outgoing) -> str:
        """Twilio's MessageSid."""
        return _json_field(response, "sid") or message.idempotency_key


class EmailApi:
    """An email provider's JSON send API with a bearer key and an idempotency key."""

    name = "email"

    def __init__(self, url: str, key: str, sender: str) -> None:
        self.url, self.key, self.sender = url, key, sender

    def request(self, message: Outgoing) -> httpx.Request:
        """POST from/to/subject/text."""
        body = {
            "from": self.sender,
            "to": message.recipient,
            "subject": message.subject,
            "text": message.text,
        }
        headers = {
            "authorization": f"Bearer {self.key}",
            "idempotency-key": message.idempotency_key,
        }
        return httpx.Request("POST", self.url, json=body, headers=headers)

    def message_id(self, response: httpx.Response, message: Outgoing) -> str:
        """The provider's message id."""
        return _json_field(response, "id") or message.idempotency_key


def _json_field(response: httpx.Response, name: str) -> str | None:
    try:
        doc: Any = response.json()
    except ValueError:
        return None
    value = doc.get(name) if isinstance(doc, dict) else None
    return str(value) if value else None


class HttpSender:
    """Sends through the provider configured for a channel, with bounded retries and SSRF checks."""

    def __init__(
        self, providers: dict[str, Provider], client: httpx.AsyncClient, *, attempts: int = 3
    ) -> None:
        self.providers, self.client, self.attempts = providers, client, attempts

    def handles(self, channel: str) -> bool:
        """Whether a provider is configured for the channel."""
        return channel in self.providers

    async def send(self, message: Outgoing) -> Accepted:
        """Send once per idempotency key; 4xx and refused URLs fail at once, transient errors retry."""
        provider = self.providers[message.channel]
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.attempts),
                wait=wait_exponential(multiplier=0.05, max=2),
                retry=retry_if_exception_type(Transient),
                reraise=True,
            ):
                with attempt:
                    response = await self._post(provider.request(message))
        except (Transient, UnsafeUrl) as exc:
            raise SendFailed(f"{provider.name}: {exc}") from exc
        return Accepted(provider.name, provider.message_id(response, message))

    async def _post(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.client.send(request, follow_redirects=True)
        except UnsafeUrl:
            raise
        except httpx.HTTPError as exc:
            raise Transient(type(exc).__name__) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise Transient(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise SendFailed(f"HTTP {response.status_code}")
        return response


def client_for(
    settings: NotifierSettings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An httpx client with timeouts, bounded redirects and the SSRF guard (with its allow-list)."""
    guard = guard_for(Allowlist.parse(settings.notifier_private_hosts))
    return httpx.AsyncClient(
        timeout=settings.notifier_http_timeout_ms / 1000,
        max_redirects=3,
        event_hooks={"request": [guard]},
        transport=transport,
    )


def build_sender(
    settings: NotifierSettings, transport: httpx.AsyncBaseTransport | None = None
) -> HttpSender:
    """The sender with every provider the settings configure (unconfigured channels use adapters)."""
    providers: dict[str, Provider] = {}
    s = settings
    if s.notifier_webhook_url:
        hook = SignedWebhook(s.notifier_webhook_url, s.notifier_webhook_secret)
        providers |= {"whatsapp": hook, "telegram": hook, "messenger": hook}
    if s.notifier_sms_url:
        providers["sms"] = TwilioSms(
            s.notifier_sms_url, s.notifier_sms_account, s.notifier_sms_token, s.notifier_sms_from
        )
    if s.notifier_email_url:
        providers["email"] = EmailApi(
            s.notifier_email_url, s.notifier_email_key, s.notifier_email_from
        )
    return HttpSender(providers, client_for(s, transport), attempts=s.notifier_http_attempts)
