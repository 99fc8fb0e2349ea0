"""Switchboard routing service."""
