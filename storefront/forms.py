"""The Storefronts page's forms. They check shapes only; the services decide."""
from django import forms

from .oauth import SHOP_DOMAIN_HELP
from .signatures import shop_domain_valid


class ShopDomainField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 255)
        kwargs.setdefault("label", "Shop domain")
        kwargs.setdefault("help_text", "Your shop's address in its admin, e.g. your-shop.myshopify.com.")
        super().__init__(**kwargs)
        self.widget.attrs.update({"placeholder": "your-shop.myshopify.com", "autocomplete": "off", "spellcheck": "false"})

    def clean(self, value):
        value = (super().clean(value) or "").strip().lower()
        if not shop_domain_valid(value):
            raise forms.ValidationError(SHOP_DOMAIN_HELP)
        return value


class ConnectTokenForm(forms.Form):
    """A custom app: the shop and its Admin API access token. The token is write-only: the
    field never renders a value back, not even after an error."""

    shop_domain = ShopDomainField()
    access_token = forms.CharField(
        max_length=500,
        label="Admin API access token",
        help_text="From your custom app in the storefront admin (Settings → Apps → Develop apps). Stored encrypted; never shown again.",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    webhook_secret = forms.CharField(
        max_length=500,
        required=False,
        label="API secret key (optional)",
        help_text="The custom app's API secret key, which signs its webhooks. Stored encrypted; never shown again.",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class ConnectOAuthForm(forms.Form):
    shop_domain = ShopDomainField()
