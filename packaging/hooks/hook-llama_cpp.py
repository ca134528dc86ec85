# llama-cpp-python loads libllama/libggml with ctypes at import time; PyInstaller
# cannot see that, so collect the shared libraries explicitly.
from PyInstaller.utils.hooks import collect_dynamic_libs

binaries = collect_dynamic_libs("llama_cpp")
