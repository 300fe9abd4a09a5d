"""Simulation tools: scenario and fair-share runners, demonstrations, trace replay."""
