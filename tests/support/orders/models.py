from django.conf import settings
from django.db import models


class Order(models.Model):
    """The model of the README's Access-control example: an order belongs to a customer."""

    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    total = models.DecimalField(max_digits=10, decimal_places=2, default=0)
