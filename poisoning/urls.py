app_name = "poisoning"

urlpatterns: list = []
