"""Docling in a child process: conversion and chunking."""
