from django.contrib import admin

from .models import Item, Note


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "price"]


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "text"]
