# Cross-building for aarch64 Linux with Debian's toolchain (gcc-aarch64-linux-gnu), running the
# test programs under qemu-user (qemu-aarch64). The target's libraries (cmocka, liburing) are
# Debian's arm64 multiarch packages (libcmocka-dev:arm64, liburing-dev:arm64) in
# /usr/lib/aarch64-linux-gnu, which the cross compiler searches. `make test-aarch64` installs
# all of it (the Makefile's cross list) and uses the presets aarch64 and aarch64-ucontext.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)

# -L /: the programs run on Debian's arm64 multiarch loader and libc (libc6:arm64, which
# libcmocka0:arm64 brings), in /lib/aarch64-linux-gnu, with cmocka beside them. Not
# -L /usr/aarch64-linux-gnu: that loader (libc6-arm64-cross) finds the multiarch libc.so.6 of
# another build first, and a loader and libc of two builds corrupt each other's state (seen:
# pthread_create looping for ever on glibc's stack cache list).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /)

# pkg-config reads the arm64 .pc files only (never the host's).
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# Programs (python3, valgrind) from the host; libraries and headers for the target.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
