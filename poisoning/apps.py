from django.apps import AppConfig


class PoisoningConfig(AppConfig):
    name = "poisoning"
