"""Kernel tier: real sockets against the Linux kernel, one namespace per test."""
