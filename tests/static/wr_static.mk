# tests/static/: test programs linked statically and without any rwsplit code (LD_PRELOAD
# does not apply to them). Not in TOOL_SRC: that wildcard links against the core archive.
STATIC_SRC   := $(wildcard tests/static/*.c)
STATIC_TOOLS := $(patsubst tests/static/%.c,$(BUILD)/tests/%,$(STATIC_SRC))

$(BUILD)/tests/wr_static: tests/static/wr_static.c
	@mkdir -p $(dir $@)
	$(CC) -static -O2 -o $@ $<

# and add $(STATIC_TOOLS) to the prerequisites of `integration:`
