%% erlang_dist - Erlang's distribution measured like bench/remote measures
%% libaemp: one-way throughput of 3-element messages between two nodes on
%% 127.0.0.1 with flow control, ping-pong round trips (median, p99), and
%% remote spawns.
%% Run by bench/erlang_dist.sh; prints RESULT lines.
-module(erlang_dist).
-export([serve/0, run/1]).

-define(N, 2000000).
-define(WINDOW, 200000).
-define(ACK_EVERY, 50000).
-define(ROUNDS, 20000).
-define(SPAWNS, 20000).
-define(SPAWN_WINDOW, 1000).

%% The server node: a sink that acknowledges every ACK_EVERY messages, and
%% an echo process for the ping-pong.
serve() ->
    register(sink, spawn(fun() -> receive {hello, From} -> sink(0, From) end end)),
    register(echo, spawn(fun echo/0)),
    receive stop -> ok end.

%% Messages are {ping, I, <<"abcdefghijklmnop">>}, like libaemp's ["ping", i, "abcdefghijklmnop"]; the
%% sender introduced itself once with {hello, Pid}.
sink(Count, From) ->
    receive
        {ping, _, _} ->
            C = Count + 1,
            case C rem ?ACK_EVERY of
                0 -> From ! {ack, C};
                _ -> ok
            end,
            sink(C, From)
    end.

echo() ->
    receive
        {ping, I, From} -> From ! {pong, I}, echo()
    end.

%% The client node.
run([ServerName]) ->
    Server = list_to_atom(ServerName),
    true = net_kernel:connect_node(Server),
    Self = self(),
    {sink, Server} ! {hello, Self},
    T0 = erlang:monotonic_time(microsecond),
    send(Server, Self, 0, 0),
    T1 = erlang:monotonic_time(microsecond),
    Rate = ?N / ((T1 - T0) / 1.0e6),
    io:format("RESULT erlang_oneway ~w msgs/s~n", [round(Rate)]),
    Times = lists:sort([ping(Server, I) || I <- lists:seq(1, ?ROUNDS)]),
    Median = lists:nth(?ROUNDS div 2, Times),
    P99 = lists:nth(trunc(?ROUNDS * 0.99), Times),
    io:format("RESULT erlang_rtt_median ~.1f us~n", [Median / 1.0]),
    io:format("RESULT erlang_rtt_p99 ~.1f us~n", [P99 / 1.0]),
    S0 = erlang:monotonic_time(microsecond),
    spawns(Server, Self, 0, 0),
    S1 = erlang:monotonic_time(microsecond),
    io:format("RESULT erlang_spawn ~w spawns/s~n", [round(?SPAWNS / ((S1 - S0) / 1.0e6))]),
    halt(0).

%% Spawn SPAWNS processes on the server, SPAWN_WINDOW in flight; each tells
%% the client it runs and ends (like bench_remote's spawn measurement).
spawns(_Server, _Self, ?SPAWNS, ?SPAWNS) -> ok;
spawns(Server, Self, Sent, Up) when Sent < ?SPAWNS, Sent - Up < ?SPAWN_WINDOW ->
    spawn(Server, fun() -> Self ! up end),
    spawns(Server, Self, Sent + 1, Up);
spawns(Server, Self, Sent, Up) ->
    receive up -> spawns(Server, Self, Sent, Up + 1) end.

%% Send N messages, never more than WINDOW ahead of the last ack.
send(_Server, _Self, ?N, ?N) -> ok;
send(Server, Self, Sent, Acked) when Sent < ?N, Sent - Acked < ?WINDOW ->
    {sink, Server} ! {ping, Sent, <<"abcdefghijklmnop">>},
    send(Server, Self, Sent + 1, Acked);
send(Server, Self, Sent, _Acked) ->
    receive {ack, C} -> send(Server, Self, Sent, C) end.

ping(Server, I) ->
    T0 = erlang:monotonic_time(microsecond),
    {echo, Server} ! {ping, I, self()},
    receive {pong, I} -> ok end,
    erlang:monotonic_time(microsecond) - T0.
