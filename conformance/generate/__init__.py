"""Requests and golden fixtures the kit makes: curated goldens, hypothesis strategies, a seeded random generator, and the shrinker for failing requests."""
