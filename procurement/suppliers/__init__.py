# The stored tiers register their hooks (procurement.figures) whenever suppliers are in use.
from procurement.suppliers import tiers as tiers
