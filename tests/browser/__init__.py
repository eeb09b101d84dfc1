"""The console driven in a real browser: Playwright and Debian's Chromium."""
