"""A realistic application for the memory benchmark: heavy imports and a large object graph.

Importing this module costs what a mid-sized web app's worker costs before it does anything: about
forty standard-library and installed packages (email, http, asyncio, sqlite3, xml, yaml, redis,
psutil, click, pygments, dateutil, ...) and a product catalogue of ``$MEMAPP_RECORDS`` (default
100,000) plain objects, each with its own string and int: 300,000 small objects in all, kept in a
dict and, in the same order, in a list. ``bench/memory.py`` prints the measured footprint.

The module knows nothing about job systems: pyresque runs :func:`touch` by import path
(``--allow-module memapp``), RQ by dotted name (``memapp_rq`` preloads it as a settings module),
Celery through a task in ``memapp_celery``.

:func:`touch` is the job. It reads a slice of the catalogue (a fifth of it, at an offset that depends
on the job number), which increments and decrements the reference count of every object in the slice
and so writes to the memory pages that hold them: in a process that shares those pages with its
parent, copy-on-write gives it a private copy of each page it touches. That is what happens to real
preloaded apps (every attribute read of a shared object is a write), and it is what the benchmark
measures: which process ends up holding those copies, and for how long.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import configparser
import csv
import ctypes
import dataclasses
import decimal
import email.mime.multipart
import email.mime.text
import email.parser
import email.policy
import email.utils
import html.parser
import http.client
import http.cookies
import http.server
import imaplib
import json
import logging.handlers
import mailbox
import multiprocessing
import os
import smtplib
import sqlite3
import statistics
import tarfile
import urllib.request
import uuid
import xml.dom.minidom
import xml.etree.ElementTree
import xmlrpc.client
import zipfile
import zoneinfo

import click
import dateutil.parser
import dateutil.rrule
import dateutil.tz
import packaging.version
import psutil
import pygments.formatters.html
import pygments.lexers.python
import redis
import sortedcontainers
import yaml

# Referenced so the imports above are plainly part of the app (and not "unused").
MODULES = (
    argparse,
    asyncio,
    concurrent.futures,
    configparser,
    csv,
    ctypes,
    dataclasses,
    decimal,
    email.mime.multipart,
    email.mime.text,
    email.parser,
    email.policy,
    email.utils,
    html.parser,
    http.client,
    http.cookies,
    http.server,
    imaplib,
    json,
    logging.handlers,
    mailbox,
    multiprocessing,
    smtplib,
    sqlite3,
    statistics,
    tarfile,
    urllib.request,
    uuid,
    xml.dom.minidom,
    xml.etree.ElementTree,
    xmlrpc.client,
    zipfile,
    zoneinfo,
    click,
    dateutil.parser,
    dateutil.rrule,
    dateutil.tz,
    packaging.version,
    psutil,
    pygments.formatters.html,
    pygments.lexers.python,
    redis,
    sortedcontainers,
    yaml,
)

RECORDS_COUNT = int(os.environ.get("MEMAPP_RECORDS", "100000"))
SLICE = max(1, RECORDS_COUNT // 5)
DONE_KEY = "memapp:done"
BY_PID_KEY = "memapp:by-pid"
TAGS = tuple(f"tag-{n}" for n in range(64))
TAG_PAIRS = tuple((a, b) for a in TAGS for b in TAGS)


class Product:
    """A catalogue entry: an ordinary object with a ``__dict__``, tracked by the collector."""

    def __init__(self, n: int) -> None:
        self.sku = f"SKU-{n:07d}"
        self.price_cents = 100_000 + n * 7
        self.stock = n % 200
        self.tags = TAG_PAIRS[(n * 7) % len(TAG_PAIRS)]


def _build_catalogue(count: int) -> dict[str, Product]:
    catalogue = {}
    for n in range(count):
        product = Product(n)
        catalogue[product.sku] = product
    return catalogue


CATALOGUE = _build_catalogue(RECORDS_COUNT)
PRODUCTS = list(CATALOGUE.values())

_clients: dict[int, redis.Redis] = {}


def _redis() -> redis.Redis:
    """A connection of this process's own (never one inherited across fork)."""
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        client = redis.Redis.from_url(os.environ["MEMAPP_REDIS_URL"])
        _clients[pid] = client
    return client


def touch(i: int) -> int:
    """The job: total the stock value of a slice of the catalogue, then count itself in Redis."""
    start = (i * 7_919 * SLICE) % len(PRODUCTS)
    chunk = PRODUCTS[start : start + SLICE]
    if len(chunk) < SLICE:
        chunk += PRODUCTS[: SLICE - len(chunk)]
    wanted = TAGS[i % 64]
    value = 0
    tagged = 0
    for product in chunk:
        value += product.price_cents * product.stock
        if wanted in product.tags:
            tagged += 1
    summary = json.dumps({"job": i, "value": value, "tagged": tagged, "first": chunk[0].sku})
    client = _redis()
    pipe = client.pipeline(transaction=False)
    pipe.incr(DONE_KEY)
    pipe.hincrby(BY_PID_KEY, str(os.getpid()), 1)
    pipe.execute()
    return len(summary)
